import numpy as np
import matplotlib.pyplot as plt


class TwoLayerMLP(object):
    """
    A two-layer fully-connected neural network. The net has an input dimension of
    N, a hidden layer dimension of H, and performs classification over C classes.

    input - fully connected layer - nonlinearity - fully connected layer - softmax
    """

    def __init__(self, input_size, hidden_size, output_size, std=1e-4, activation='relu'):
        self.params = {}
        self.params['W1'] = std * np.random.randn(input_size, hidden_size)
        self.params['b1'] = np.zeros(hidden_size)
        self.params['W2'] = std * np.random.randn(hidden_size, output_size)
        self.params['b2'] = np.zeros(output_size)
        self.activation = activation

    def _hidden(self, X):
        z = X.dot(self.params['W1']) + self.params['b1']
        if self.activation == 'sigmoid':
            return z, 1.0 / (1.0 + np.exp(-z))
        elif self.activation == 'relu':
            return z, np.maximum(0, z)
        raise ValueError('Unknown activation type')

    def loss(self, X, y=None, reg=0.0):
        # Unpack variables from the params dictionary
        W1, b1 = self.params['W1'], self.params['b1']
        W2, b2 = self.params['W2'], self.params['b2']
        N, D = X.shape

        # Compute the forward pass
        z, hid = self._hidden(X)
        scores = hid.dot(W2) + b2

        # If the targets are not given then jump out, we're done
        if y is None:
            return scores

        # Compute the loss (softmax, with max subtracted)
        sc = scores - scores.max(axis=1, keepdims=True)
        ex = np.exp(sc)
        prob = ex / ex.sum(axis=1, keepdims=True)
        loss = -np.log(prob[np.arange(N), y]).mean()
        loss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

        # Backward pass: compute gradients
        grads = {}
        d = prob.copy()
        d[np.arange(N), y] -= 1
        d = d / N
        grads['W2'] = hid.T.dot(d) + reg * W2
        grads['b2'] = d.sum(axis=0)
        dhid = d.dot(W2.T)
        if self.activation == 'sigmoid':
            dz = dhid * hid * (1 - hid)
        else:
            dz = dhid * (z > 0)
        grads['W1'] = X.T.dot(dz) + reg * W1
        grads['b1'] = dz.sum(axis=0)

        return loss, grads

    def _accuracy(self, X, y):
        return np.mean(np.argmax(self.loss(X), axis=1) == y)

    def train(self, X, y, X_val, y_val,
              learning_rate=1e-3, learning_rate_decay=0.95,
              reg=1e-5, num_epochs=10,
              batch_size=200, verbose=False):
        np.random.seed(1)

        num_train = X.shape[0]
        iterations_per_epoch = max(num_train // batch_size, 1)

        # Use SGD to optimize the parameters in self.model
        loss_history = []
        grad_magnitude_history = []
        train_acc_history = []
        val_acc_history = []

        for epoch in range(num_epochs):
            perm = np.random.permutation(num_train)
            for it in range(iterations_per_epoch):
                idx = perm[it * batch_size:(it + 1) * batch_size]
                X_batch = X[idx]
                y_batch = y[idx]

                # Compute loss and gradients using the current minibatch
                loss, grads = self.loss(X_batch, y=y_batch, reg=reg)
                loss_history.append(loss)

                # SGD update
                self.params['W1'] -= learning_rate * grads['W1']
                self.params['b1'] -= learning_rate * grads['b1']
                self.params['W2'] -= learning_rate * grads['W2']
                self.params['b2'] -= learning_rate * grads['b2']

                grad_magnitude_history.append(np.linalg.norm(grads['W1']))

            # Every epoch, check train and val accuracy and decay learning rate.
            train_acc = self._accuracy(X_batch, y_batch)
            val_acc = self._accuracy(X_val, y_val)
            train_acc_history.append(train_acc)
            val_acc_history.append(val_acc)
            if verbose:
                print('Epoch %d: loss %f, train_acc %f, val_acc %f' % (
                    epoch + 1, loss, train_acc, val_acc))

            # Decay learning rate
            learning_rate *= learning_rate_decay

        return {
            'loss_history': loss_history,
            'grad_magnitude_history': grad_magnitude_history,
            'train_acc_history': train_acc_history,
            'val_acc_history': val_acc_history,
        }

    def predict(self, X):
        y_pred = None

        ###########################################################################
        # TODO: Implement this function; it should be VERY simple!                #
        ###########################################################################
        y_pred = self.loss(X)
        ###########################################################################
        #                              END OF YOUR CODE                           #
        ###########################################################################

        return y_pred
