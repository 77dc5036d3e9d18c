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

    def loss(self, X, y=None, reg=0.0):
        # Unpack variables from the params dictionary
        W1, b1 = self.params['W1'], self.params['b1']
        W2, b2 = self.params['W2'], self.params['b2']
        N, D = X.shape
        C = W2.shape[1]

        # Compute the forward pass
        scores = None
        #############################################################################
        # TODO: Perform the forward pass, computing the class scores for the input. #
        #############################################################################
        h_in = np.dot(X, W1) + b1
        if self.activation == 'sigmoid':
            h_out = 1 / (1 + np.exp(-h_in))
        elif self.activation == 'relu':
            h_out = np.maximum(0, h_in)
        else:
            raise ValueError('Unknown activation type')
        scores = np.dot(h_out, W2) + b2
        #############################################################################
        #                              END OF YOUR CODE                             #
        #############################################################################

        # If the targets are not given then jump out, we're done
        if y is None:
            return scores

        # Compute the loss
        loss = None
        #############################################################################
        # TODO: Finish the forward pass, and compute the loss.                      #
        #############################################################################
        # one-hot encode the labels
        Y = (np.arange(C) == y[:, None]).astype(np.float)

        shifted = scores - np.max(scores, axis=1, keepdims=True)
        softmax = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)
        loss = -np.sum(Y * np.log(softmax)) / N
        loss += 0.5 * reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
        #############################################################################
        #                              END OF YOUR CODE                             #
        #############################################################################

        # Backward pass: compute gradients
        grads = {}
        #############################################################################
        # TODO: Compute the backward pass.                                          #
        #############################################################################
        dscores = (softmax - Y) / N
        grads['W2'] = np.dot(h_out.T, dscores) + reg * W2
        grads['b2'] = np.sum(dscores, axis=0)
        dh_out = np.dot(dscores, W2.T)
        if self.activation == 'sigmoid':
            dh_in = dh_out * h_out * (1 - h_out)
        else:
            dh_in = dh_out * (h_in > 0)
        grads['W1'] = np.dot(X.T, dh_in) + reg * W1
        grads['b1'] = np.sum(dh_in, axis=0)
        #############################################################################
        #                              END OF YOUR CODE                             #
        #############################################################################

        return loss, grads

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
                X_batch = None
                y_batch = None

                #########################################################################
                # TODO: Create a minibatch of training data and labels               #
                #########################################################################
                mb = perm[it * batch_size:(it + 1) * batch_size]
                X_batch = X[mb]
                y_batch = y[mb]
                #########################################################################
                #                             END OF YOUR CODE                          #
                #########################################################################

                # Compute loss and gradients using the current minibatch
                loss, grads = self.loss(X_batch, y=y_batch, reg=reg)
                loss_history.append(loss)

                #########################################################################
                # TODO: SGD update                                                      #
                #########################################################################
                for param in ['W1', 'b1', 'W2', 'b2']:
                    self.params[param] -= learning_rate * grads[param]
                #########################################################################
                #                             END OF YOUR CODE                          #
                #########################################################################

                grad_magnitude_history.append(np.linalg.norm(grads['W1']))

            # Every epoch, check train and val accuracy and decay learning rate.
            train_acc = (self.predict(X_batch) == y_batch).mean()
            val_acc = (self.predict(X_val) == y_val).mean()
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
        y_pred = np.argmax(self.loss(X), axis=1)
        ###########################################################################
        #                              END OF YOUR CODE                           #
        ###########################################################################

        return y_pred
